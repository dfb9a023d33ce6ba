"""Photos of any size: the numpy transforms of the photo model and the photo codec (format version 3)."""
