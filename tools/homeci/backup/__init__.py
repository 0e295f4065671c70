"""``homeci backup`` and ``homeci restore``: the archive (:mod:`.archive`, its format defined once in the
chart's ``files/backup.py``, loaded by :mod:`.script`), what is read from a running stack (:mod:`.collect`,
:mod:`.stackinfo`, :mod:`.objects`, :mod:`.images`, the in-container commands in :mod:`.inpod`) and how it
is put back (:mod:`.restore`)."""
