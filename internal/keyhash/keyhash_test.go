package keyhash

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func TestReferenceContract(t *testing.T) {
	cases := map[string]string{
		"user:123": "partition-48",
		"test-key": "partition-49",
	}
	for key, want := range cases {
		if got := ID(Partition(MD5, key, 64)); got != want {
			t.Errorf("Partition(MD5, %q, 64) = %s, want %s", key, got, want)
		}
	}
}

func TestMatchesFormula(t *testing.T) {
	for i := 0; i < 2000; i++ {
		key := fmt.Sprintf("key-%d-%s", i, strings.Repeat("x", i%300))
		for _, n := range []uint32{1, 7, 64, 1024, 65536} {
			sum := md5.Sum([]byte(key))
			if got, want := Partition(MD5, key, n), binary.BigEndian.Uint32(sum[:4])%n; got != want {
				t.Fatalf("md5 %q n=%d: got %d want %d", key, n, got, want)
			}
			if got, want := Partition(XXH64, key, n), uint32(xxhash.Sum64String(key)%uint64(n)); got != want {
				t.Fatalf("xxh64 %q n=%d: got %d want %d", key, n, got, want)
			}
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	for _, size := range []int{0, 8, 64, 1000, 100000} {
		key := strings.Repeat("k", size)
		for _, a := range []Algorithm{MD5, XXH64} {
			if allocs := testing.AllocsPerRun(100, func() { Partition(a, key, 64) }); allocs != 0 {
				t.Errorf("%s with a %d-byte key: %v allocs/op, want 0", a, size, allocs)
			}
		}
	}
}

func TestParseID(t *testing.T) {
	for _, n := range []uint32{0, 1, 63, 4294967295} {
		if got, ok := ParseID(ID(n)); !ok || got != n {
			t.Errorf("ParseID(ID(%d)) = %d, %v", n, got, ok)
		}
	}
	for _, bad := range []string{"", "partition-", "partition--1", "partition-01", "partition-x", "Partition-1", "partition-4294967296", "p-1"} {
		if _, ok := ParseID(bad); ok {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}

func TestAlgorithmNames(t *testing.T) {
	if MD5.String() != "md5" || XXH64.String() != "xxh64" || Algorithm(9).String() != "unknown(9)" {
		t.Fatal("unexpected algorithm names")
	}
	if MD5.Description() == "" || XXH64.Description() == "" {
		t.Fatal("missing description")
	}
}

func BenchmarkPartition(b *testing.B) {
	for _, a := range []Algorithm{MD5, XXH64} {
		b.Run(a.String(), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				Partition(a, "user:123", 64)
			}
		})
	}
}
