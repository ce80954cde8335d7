"""The file formats Hashlens writes and reads, one module each; importing this package
registers them all in `app.exports.registry`, in the order the choices are offered."""

from app.exports.fileformats import (  # noqa: F401  (imported to register)
    xml_format, csv_format, tsv_format, json_format, ndjson_format, xlsx_format, images_format, database_format,
)
