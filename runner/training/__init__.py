"""Kind `train`'s parts: the config (spec), data and batch order (data), torchvision models
(models), checkpoint contents (checkpoint), the object store (store) and the loop (loop)."""
