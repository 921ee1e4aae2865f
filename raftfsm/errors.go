package raftfsm

import (
	"errors"
	"fmt"
)

// Errors returned by Apply (inside ApplyResult) and by the codec. A rejected
// command changes nothing.
var (
	errUnknownCommand      = errors.New("unknown command type")
	errMalformedCommand    = errors.New("malformed command")
	errNotBootstrapped     = errors.New("cluster configuration not committed yet")
	ErrConfigMismatch      = errors.New("cluster configuration mismatch")
	errInvalidConfig       = errors.New("invalid cluster configuration")
	ErrInvalidMember       = errors.New("invalid member")
	ErrUnknownNode         = errors.New("unknown node")
	ErrIncarnationMismatch = errors.New("incarnation mismatch")
	ErrStaleTable          = errors.New("partition table changed since the proposal was computed")
	errInvalidTable        = errors.New("invalid partition table")
	ErrInvalidKey          = errors.New("invalid custom data key")
	ErrValueTooLarge       = errors.New("custom data value too large")
	ErrKeyNotFound         = errors.New("custom data key not found")
	ErrVersionMismatch     = errors.New("custom data version mismatch")
	errBadSnapshot         = errors.New("unreadable snapshot")
	// ErrClusterMismatch means a node, a data directory or a connection
	// belongs to another cluster (another cluster ID).
	ErrClusterMismatch = errors.New("cluster ID mismatch")
	// ErrNoHolder refuses a drain that would leave no member to hold the
	// partitions.
	ErrNoHolder = errors.New("no member would be left to hold partitions")
)

// codes names each sentinel for the wire (forwarded proposals) and for HTTP.
var codes = map[error]string{
	errUnknownCommand:      "unknown_command",
	errMalformedCommand:    "malformed_command",
	errNotBootstrapped:     "not_bootstrapped",
	ErrConfigMismatch:      "config_mismatch",
	errInvalidConfig:       "invalid_config",
	ErrInvalidMember:       "invalid_member",
	ErrUnknownNode:         "unknown_node",
	ErrIncarnationMismatch: "incarnation_mismatch",
	ErrStaleTable:          "stale_table",
	errInvalidTable:        "invalid_table",
	ErrInvalidKey:          "invalid_key",
	ErrValueTooLarge:       "value_too_large",
	ErrKeyNotFound:         "key_not_found",
	ErrVersionMismatch:     "version_mismatch",
	errBadSnapshot:         "bad_snapshot",
	ErrClusterMismatch:     "cluster_mismatch",
	ErrNoHolder:            "no_holder",
}

// Code returns the wire code of err's sentinel, or "" when err wraps none.
func Code(err error) string {
	for sentinel, code := range codes {
		if errors.Is(err, sentinel) {
			return code
		}
	}
	return ""
}

// FromCode rebuilds an error from a wire code and message; unknown codes give
// a plain error with the message.
func FromCode(code, msg string) error {
	for sentinel, c := range codes {
		if c == code {
			if msg == "" || msg == sentinel.Error() {
				return sentinel
			}
			return &codedError{sentinel: sentinel, msg: msg}
		}
	}
	return errors.New(msg)
}

type codedError struct {
	sentinel error
	msg      string
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.sentinel }

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
