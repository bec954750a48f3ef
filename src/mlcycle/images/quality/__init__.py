"""The image kinds' parts of validate_data.py, eda.py and materialize_data.py: labels per file
(classification), masks (segmentation) and boxes (detection), registered in
``mlcycle.data_quality`` by mlcycle's own entry points."""
