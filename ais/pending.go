package ais

import (
	"context"
	"errors"
	"os"
)

// Temporary until the dataset decoder lands.

// ErrData marks a problem with a user's data.
var ErrData = errors.New("data problem")

// DecodeFiles decodes a registration's data and label zips.
func DecodeFiles(ctx context.Context, task string, data, label *os.File) (*Dataset, error) {
	return nil, errors.New("decoding is not implemented yet")
}
