"""Runtime classes that ``facezoo.load`` returns, one per card task (``FaceModel`` for attributes)."""
