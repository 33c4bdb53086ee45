// Package exif extracts camera and provenance metadata from image files
// without decoding pixels.
//
// It reads JPEG APP1 Exif (TIFF IFD0, the Exif sub-IFD and the GPS sub-IFD),
// JPEG APP1 XMP packets, JPEG comments, PNG tEXt/zTXt/iTXt/eXIf chunks and
// WebP EXIF/XMP chunks. Besides the camera fields it collects generator
// evidence: Software and XMP CreatorTool values that name an image generator,
// the IPTC DigitalSourceType "trainedAlgorithmicMedia", the Stable Diffusion
// (AUTOMATIC1111) "parameters" text chunk and the ComfyUI "prompt"/"workflow"
// chunks.
//
// The parsers are written for hostile input: every offset is bounds-checked,
// IFD chains are cycle- and depth-limited, decompressed text is capped and no
// allocation is sized from an unchecked length field. Parse never panics and
// never returns an error; what cannot be read is simply absent.
package exif
