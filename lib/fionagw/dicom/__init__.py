"""The one DICOM element codec: Part-10 and dataset bytes, for every stage that reads them raw.

The receiver's identifier check, the classifier's header read, the de-identification's
reader and writer and the release check all walk DICOM elements themselves, because
pydicom's file-object reader costs several times more per element. They share this package:

* :mod:`~fionagw.dicom.vr`: value representations (which take a 4-byte length, which pad how);
* :mod:`~fionagw.dicom.syntax`: what a transfer syntax UID means for the bytes;
* :mod:`~fionagw.dicom.tags`: the tags it treats specially (items, pixel data, ...);
* :mod:`~fionagw.dicom.walk`: the element walker (explicit/implicit VR, both byte orders,
  undefined lengths, sequences, items, encapsulated pixel data, the file meta group, deflate);
* :mod:`~fionagw.dicom.raw`: the walked elements as pydicom ``RawDataElement`` objects, and
  element headers for writing raw elements back;
* :mod:`~fionagw.dicom.charset`: Python encodings of a Specific Character Set value;
* :mod:`~fionagw.dicom.errors`: what it raises for bytes it cannot read.

Bounded by design: every length is checked against the bytes at hand before it is used, so
no input makes it allocate more than the input (deflate aside, capped), loop without
progress, or nest deeper than :data:`~fionagw.dicom.walk.MAX_DEPTH`. Anything it cannot read
raises a :class:`~fionagw.dicom.errors.CodecError`, never another exception.
"""
