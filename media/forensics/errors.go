package forensics

import "errors"

// ErrTooLarge is wrapped by Analyze's error for images over MaxPixels.
var ErrTooLarge = errors.New("image exceeds the decode pixel limit")
