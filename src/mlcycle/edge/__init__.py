"""What runs on a device beside an exported model: decoding, preprocessing, reading rows and answering outputs. Imports nothing of mlcycle, so the folder can be copied alone."""
