package testenv

import (
	"context"
	"errors"
	"sync"

	"github.com/wardenlab/warden/storage"
)

// ErrBlobDelete is the failure FlakyBlobs answers.
var ErrBlobDelete = errors.New("blob store unavailable (test)")

// FlakyBlobs is a blob store whose deletes fail while failures are armed:
// it stands for a disk error or a storage outage in front of a real store.
type FlakyBlobs struct {
	storage.BlobStore
	mu      sync.Mutex
	fails   int // deletes still to fail; < 0: every one
	deletes int
}

// NewFlakyBlobs wraps store; its next fails deletes fail (-1: all of them
// until FailDeletes changes it).
func NewFlakyBlobs(store storage.BlobStore, fails int) *FlakyBlobs {
	return &FlakyBlobs{BlobStore: store, fails: fails}
}

// FailDeletes arms the next n deletes to fail (-1: every one).
func (f *FlakyBlobs) FailDeletes(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails = n
}

// Deletes counts the deletes tried, failed ones included.
func (f *FlakyBlobs) Deletes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deletes
}

// Delete fails while armed, else deletes from the wrapped store.
func (f *FlakyBlobs) Delete(ctx context.Context, key string) error {
	f.mu.Lock()
	f.deletes++
	fail := f.fails != 0
	if f.fails > 0 {
		f.fails--
	}
	f.mu.Unlock()
	if fail {
		return ErrBlobDelete
	}
	return f.BlobStore.Delete(ctx, key)
}
