"""What runs on a device beside an exported model: decoding and preprocessing images
(``decode.py``), loading and running the graph (``model.py``), answering each output form
(``form.py``, ``forms.py``), reading table rows (``rows.py``) and the predict command
(``predict.py``, ``predict_rows.py``, ``options.py``; ``python -m edge``).

It imports nothing of mlcycle (its imports are relative), so the folder can be copied alone
onto a device with numpy, pillow and onnxruntime. mlcycle's training, server and monitor
import it: they decode, preprocess and answer exactly as the device does.
"""
