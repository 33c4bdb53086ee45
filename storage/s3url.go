package storage

// S3Unconfigured is why an s3:// model_file_url is refused: reading one
// needs an S3-compatible blob store configured on the server
// (WARDEN_BLOB_URL), which this deployment does not have.
const S3Unconfigured = `s3:// URLs need an S3 blob store configured on the server (WARDEN_BLOB_URL); this deployment has none: upload the file as multipart field "file" or give an https:// URL`
