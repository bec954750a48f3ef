"""The learning curve: one candidate trained on growing shares of each fold's training samples
(``mlcycle learning-curve``), a power law fitted to its validation error, and what twice the
data would give."""
