import pytest

from facezoo import attributes as A


def test_celeba_has_40_attributes_in_official_order():
    assert len(A.CELEBA_40) == 40
    assert A.CELEBA_40.names[0] == "5_o_Clock_Shadow" and A.CELEBA_40.names[-1] == "Young"
    assert A.CELEBA_40.names[20] == "Male"
    assert all(a.kind == "binary" for a in A.CELEBA_40)
    holistic = {a.name for a in A.CELEBA_40 if a.scope == "holistic"}
    assert holistic == A.CELEBA_HOLISTIC
    assert A.CELEBA_40["Eyeglasses"].group == "local_nominal"


def test_label_spaces_kinds_and_classes():
    assert A.UTKFACE["age"].kind == "ordinal" and A.UTKFACE["age"].num_classes == A.MAX_AGE + 1
    assert A.UTKFACE["race"].classes == ("white", "black", "asian", "indian", "others")
    assert A.ADIENCE["age_group"].num_classes == 8 and A.ADIENCE["age_group"].group == "holistic_ordinal"
    assert A.FER2013["expression"].classes[6] == "neutral"
    assert set(A.LABEL_SPACES) >= {"celeba", "lfwa", "utkface", "adience", "fer2013", "fotw", "morph2"}


def test_round_trip_and_lookup_errors():
    for space in A.LABEL_SPACES.values():
        assert A.LabelSpace.from_dict(space.to_dict()) == space
    with pytest.raises(KeyError, match="not in label space"):
        A.CELEBA_40["Beard"]
    with pytest.raises(ValueError, match="Unknown label space"):
        A.get_label_space("celebA")


@pytest.mark.parametrize("text, group", [("(25, 32)", 4), ("(0, 2)", 0), ("(60, 100)", 7), ("35", None),
                                         ("(38, 48)", 5), ("2", 0), ("None", None), ("", None), ("13", None),
                                         ("abc", None), ("(8, 23)", 3)])
def test_adience_age_strings(text, group):
    assert A.adience_age_group(text) == group


def test_attribute_validation():
    with pytest.raises(ValueError, match="kind"):
        A.Attribute("x", "ordinalish", "holistic")
    with pytest.raises(ValueError, match="values"):
        A.Attribute("x", "ordinal", "holistic", classes=("a", "b"), values=(1.0,))
    with pytest.raises(ValueError, match="duplicate"):
        A.LabelSpace("s", (A.GENDER, A.GENDER))
