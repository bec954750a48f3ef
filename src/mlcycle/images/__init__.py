"""Images as a kind of data: the parts of the image tasks (classification, segmentation,
detection) that plug into the stages (compare, quality, the model card, ...) through their
registries. The training side of images lives in data/, models/ and tasks/."""
