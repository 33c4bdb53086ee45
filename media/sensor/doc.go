// Package sensor verifies camera ("sensor-PKI") signatures embedded in image
// files against a manufacturer trust store.
//
// # Signature format
//
// A signed image carries exactly one signature container:
//
//   - JPEG: an APP10 segment (marker 0xFFEA) whose payload starts with the
//     identifier "WARDEN-SENSOR\x00".
//   - PNG: an ancillary, private, unsafe-to-copy chunk of type "snSG" whose
//     data starts with the same identifier.
//
// After the identifier comes a JSON envelope:
//
//	{
//	  "v": 1,
//	  "alg": "ECDSA-SHA256" | "Ed25519",
//	  "sig": "<base64 signature>",
//	  "chain": ["<base64 DER certificate>", ...],   // leaf first, or
//	  "chain_pem": "-----BEGIN CERTIFICATE-----..."  // same, as PEM
//	}
//
// The signed digest is SHA-256 over the whole file with the signature
// container (JPEG segment including marker and length, or PNG chunk
// including length, type and CRC) removed. It therefore covers the pixels
// and every other metadata segment, including the Exif make, model, serial
// and capture time. ECDSA signatures are ASN.1 DER over the digest (any
// curve the leaf key uses); Ed25519 signs the 32-byte digest as its message.
//
// # Trust
//
// The leaf certificate must chain, through the intermediates in the
// envelope, to a root in the manufacturer trust pool at verification time,
// and if it declares key usages they must include digitalSignature. A
// certificate subject serialNumber, when present, must equal the Exif body
// serial number. Capture time is not a trusted timestamp, so an expired
// device certificate fails even for old captures.
package sensor
