package auth

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// Store is the current token set of a node, optionally backed by a token
// file that can be re-read while the node runs (rotation without restart).
// Reads of the current set are lock-free.
type Store struct {
	cur  atomic.Pointer[Tokens]
	path string

	mu   sync.Mutex // serializes reloads
	last []byte     // the file content the current set came from
}

// NewStore returns a store holding t, not backed by a file.
func NewStore(t *Tokens) *Store {
	s := &Store{}
	s.cur.Store(t)
	return s
}

// OpenFile returns a store backed by the token file at path, loaded now.
func OpenFile(path string) (*Store, error) {
	s := &Store{path: path}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Tokens is the current set (nil = authentication off).
func (s *Store) Tokens() *Tokens { return s.cur.Load() }

// Path is the backing file ("" = none).
func (s *Store) Path() string { return s.path }

// Reload re-reads the token file. A file that cannot be read or parsed
// leaves the current set in place (a half-written file must not lock the
// operator out, nor open the node) and returns the error, every time: a
// watcher polling a bad file logs it once, but an operator's SIGHUP must
// hear that the file is still bad. changed reports
// whether the file's content differed from the last one loaded.
func (s *Store) Reload() (changed bool, err error) {
	if s.path == "" {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := os.ReadFile(s.path)
	if err != nil {
		return false, fmt.Errorf("token file: %w", err)
	}
	if s.last != nil && bytes.Equal(data, s.last) {
		return false, nil
	}
	t, err := Parse(data)
	if err != nil {
		return false, fmt.Errorf("token file %s: %w", s.path, err)
	}
	s.last = data
	s.cur.Store(t)
	return true, nil
}
