// Package forensics estimates whether an image is AI-generated from signals
// computed on its decoded pixels and its metadata, in pure Go.
//
// Four detectors each give a score in [0, 1], higher meaning less
// camera-like:
//
//   - prnu_score: the noise residual (luminance minus its 3×3 median) is
//     measured for its level, its autocorrelation at lags 1, 2 and 8, its
//     kurtosis and the consistency of its level across quadrants; level,
//     lag-2/8 correlation and quadrant consistency are scored (kurtosis is
//     dominated by edges on real photos, 12 and 122 on the fixtures, and is
//     not). A camera
//     leaves a sensor noise floor that is close to white; generated images
//     are over-smooth, and up-sampling or transposed convolutions leave
//     periodic correlation (see prnuScore).
//   - spectral_score: a radix-2 FFT of the centre crop (≤512²) of the
//     residual and of its magnitude looks for spectral peaks at periods 2, 4
//     and 8 relative to the local spectral median (see spectralPeaks).
//   - jpeg_quantization_score (JPEG only): the DQT tables are compared with
//     libjpeg's scaled Annex K tables; software-encoder tables at default
//     qualities are weak generator evidence, camera-custom tables weak
//     camera evidence (see jpegScore).
//   - metadata_anomaly_score: missing camera, exposure and capture data,
//     lossless PNG without camera data, and generator tags (see
//     metadataScore).
//
// The scores are combined with the fixed weights below into ai_probability
// by a logistic function; ensemble_confidence is how much they agree.
// detected_generator is never inferred from scores: it is set only when the
// metadata names a generator. The CNN detector is not part of this package;
// cnn_score stays null with the reason given.
package forensics
