// Package keyhash maps keys to partitions. It is the contract shared with
// every node and every non-Go client, so it must never change for a given
// Algorithm.
package keyhash

import (
	"crypto/md5"
	"encoding/binary"
	"strconv"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// Algorithm selects the key hash.
type Algorithm uint8

const (
	// MD5 is BigEndian.Uint32(md5(key)[0:4]) % partitions: the reference
	// library's mapping, kept so existing clients route identically.
	MD5 Algorithm = iota
	// XXH64 is xxhash64(key) % partitions (seed 0): about 15 times faster.
	XXH64
)

// String returns the name used in configuration and in /cluster hash_config.
func (a Algorithm) String() string {
	switch a {
	case MD5:
		return "md5"
	case XXH64:
		return "xxh64"
	default:
		return "unknown(" + strconv.Itoa(int(a)) + ")"
	}
}

// Description is the exact formula, for documentation and hash_config.
func (a Algorithm) Description() string {
	switch a {
	case MD5:
		return "BigEndian.Uint32(md5(key)[0:4]) % partition_count"
	case XXH64:
		return "xxhash64(key, seed=0) % partition_count"
	default:
		return ""
	}
}

// Encoding names how the digest becomes the integer taken modulo the
// partition count, for hash_config: md5's first 4 bytes big-endian, xxh64's
// whole 64-bit value.
func (a Algorithm) Encoding() string {
	if a == XXH64 {
		return "uint64"
	}
	return "big_endian_uint32"
}

// IDFormat is how a partition number becomes its ID (see ID).
const IDFormat = "partition-%d"

// Partition returns the partition number of key among n partitions
// (n must be > 0). It does not allocate, whatever the key's length.
func Partition(a Algorithm, key string, n uint32) uint32 {
	if a == XXH64 {
		return uint32(xxhash.Sum64String(key) % uint64(n))
	}
	// md5.Sum neither keeps nor modifies its input, so viewing the string's
	// bytes without a copy is safe and avoids an allocation for long keys.
	sum := md5.Sum(unsafe.Slice(unsafe.StringData(key), len(key)))
	return binary.BigEndian.Uint32(sum[:4]) % n
}

// ID returns the partition ID "partition-<n>".
func ID(n uint32) string {
	return "partition-" + strconv.FormatUint(uint64(n), 10)
}

// IDs returns the IDs of partitions 0..n-1; routing tables keep it so that
// lookups never format strings.
func IDs(n uint32) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = ID(uint32(i))
	}
	return ids
}

// ParseID is the inverse of ID. It accepts only the canonical form.
func ParseID(id string) (uint32, bool) {
	const prefix = "partition-"
	if len(id) <= len(prefix) || id[:len(prefix)] != prefix {
		return 0, false
	}
	digits := id[len(prefix):]
	if len(digits) > 1 && digits[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}
