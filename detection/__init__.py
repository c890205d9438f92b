"""Detection datasets: one point per labelled box, in an object collection beside the images.

    detection.geometry   box pixels, clipping, the crop region and its context margin (pure)
    detection.boxes      which collection is which; the boxes of an image, the images of boxes
    detection.crops      a box's crop and thumbnail, an image with its boxes drawn
    detection.masks      a box's mask (COCO polygons / RLE, YOLO polygons): checked, stored, written back

Indexing the boxes is indexer/objects.py; their duplicate-box score analysis/boxes.py; their
COCO / YOLO exports export/detection.py.
"""
