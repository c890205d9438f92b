"""The ground under indexer/, detection/ and scoring/: reading one image file safely
(`imaging.images.decode_image`: odd files, EXIF rotation, reduced JPEG decodes) and reporting
the progress of the long loops over images (`imaging.progress.progress_bar`: tqdm's bar on a
terminal, whole lines in a log). It imports nothing of embedscape's but `analysis/` (the
shrink factor the metrics measure at), so every package that decodes images can import it."""
