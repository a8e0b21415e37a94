"""Human review: the queue (likely-wrong first), the decisions store, the web app.

Decisions are data: every click is one row in ``WORKSPACE/review/decisions.sqlite``
(see :mod:`weaklabel.review.store`); :func:`weaklabel.review.reviewed.write_reviewed`
turns them into ``reviewed_labels.parquet`` and ``reviewed_images.parquet`` for the next
build.
"""
