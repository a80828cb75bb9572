"""``facezoo facedb``: a FaceDB of known people from the shell — ``enroll``, ``remove``, ``list``, ``search``.

    facezoo facedb enroll people Ada ada1.jpg ada2.jpg      # creates people.npz/.json with verify_face
    facezoo facedb search people who.jpg -k 3
    facezoo analyze group.jpg --facedb people                 # every face also named (or not)

``add_parser(subparsers)`` adds the command; user errors are ``facezoo.errors.UserError`` (one line, exit 2).
"""
from __future__ import annotations

import json
import os

from facezoo.train.recipe_args import positive_int


def add_parser(subparsers):
    facedb = subparsers.add_parser("facedb", help="a database of known faces: enroll, remove, list, search")
    sub = facedb.add_subparsers(dest="facedb_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("enroll", help="add images of a person (creates the database if needed)")
    p.add_argument("db", help="database path (DB.npz + DB.json)")
    p.add_argument("name", help="the person's name")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photos of the person (or crops in the framing)")
    p.add_argument("--model", default="verify_face", help="verification model of a new database (verify_face)")
    p.set_defaults(func=run)
    p = sub.add_parser("remove", help="forget a person")
    p.add_argument("db")
    p.add_argument("name")
    p.set_defaults(func=run)
    p = sub.add_parser("list", help="enrolled people and how many embeddings each has")
    p.add_argument("db")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)
    p = sub.add_parser("search", help="the nearest enrolled people of each image's face")
    p.add_argument("db")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-k", type=positive_int, default=3, help="people per image (3)")
    p.set_defaults(func=run)
    return facedb


def open_db(path, model: str | None = None):
    """The database at ``path`` with its model loaded; a new empty one for ``model`` when none exists."""
    from facezoo.face.db import FaceDB, _paths
    if os.path.isfile(_paths(path)[1]):
        return FaceDB.open(path)
    if model is None:
        from facezoo.errors import MissingDataError
        raise MissingDataError(f"{_paths(path)[1]}: no FaceDB there (facezoo facedb enroll creates one)")
    from facezoo.zoo import load
    return FaceDB(load(model))


def run(args) -> int:
    command = args.facedb_command
    db = open_db(args.db, args.model if command == "enroll" else None)
    if command == "enroll":
        added = db.enroll(args.name, list(args.images))
        db.save(args.db)
        print(f"enrolled {added} image(s) of {args.name}; {len(db)} people, {db.n_embeddings} embeddings in {args.db}")
    elif command == "remove":
        removed = db.remove(args.name)
        db.save(args.db)
        print(f"removed {args.name} ({removed} embeddings); {len(db)} people left")
    elif command == "list":
        counts = {n: len(db.embeddings_of(n)) for n in db.names}
        if args.json:
            print(json.dumps({"model": db.identity, "people": counts}, indent=1))
        else:
            print(f"{args.db}: {len(db)} people, {db.n_embeddings} embeddings, model {db.identity['model']}")
            for name, n in counts.items():
                print(f"  {name} ({n})")
    else:
        threshold = db.embedder.threshold
        for image, found in zip(args.images, db.search(list(args.images), k=args.k)):
            shown = ", ".join(f"{m['name']} {m['distance']:.3f}{' (match)' if m['distance'] <= threshold else ''}"
                              for m in found)
            print(f"{image}: {shown}")
    return 0
