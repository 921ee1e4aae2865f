// Package refbaseline is the reference library's read path, kept only as the
// baseline our benchmarks compare against: md5, then fmt.Sprintf of the
// partition ID, then a string-keyed map under an RWMutex; owner lookups copy
// nodes out of a map into a new slice. N is the node type of the caller
// (generic, so that the root package's tests can use it without an import
// cycle).
package refbaseline

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
)

// Partition is one partition in the reference layout.
type Partition struct {
	ID           string
	PrimaryNode  string
	ReplicaNodes []string
}

// Cluster is the reference library's partition map and node map.
type Cluster[N any] struct {
	mu         sync.RWMutex
	count      int
	partitions map[string]*Partition
	nodes      map[string]*N
}

// New returns an empty cluster of count partitions.
func New[N any](count int) *Cluster[N] {
	return &Cluster[N]{count: count, partitions: map[string]*Partition{}, nodes: map[string]*N{}}
}

// AddPartition adds or replaces a partition (set-up, not measured).
func (c *Cluster[N]) AddPartition(p Partition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partitions[p.ID] = &p
}

// AddNode adds or replaces a node (set-up, not measured).
func (c *Cluster[N]) AddNode(id string, n N) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[id] = &n
}

// GetPartition maps key to its partition the reference's way.
func (c *Cluster[N]) GetPartition(key string) (*Partition, error) {
	sum := md5.Sum([]byte(key))
	id := fmt.Sprintf("partition-%d", binary.BigEndian.Uint32(sum[:4])%uint32(c.count))
	c.mu.RLock()
	defer c.mu.RUnlock()
	p, ok := c.partitions[id]
	if !ok {
		return nil, fmt.Errorf("partition %s not found", id)
	}
	return p, nil
}

// GetReplicas copies p's replicas out of the node map.
func (c *Cluster[N]) GetReplicas(p *Partition) []N {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]N, 0, len(p.ReplicaNodes))
	for _, id := range p.ReplicaNodes {
		if n, ok := c.nodes[id]; ok {
			out = append(out, *n)
		}
	}
	return out
}

// GetNodes copies p's primary and replicas out of the node map.
func (c *Cluster[N]) GetNodes(p *Partition) []N {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]N, 0, 1+len(p.ReplicaNodes))
	if n, ok := c.nodes[p.PrimaryNode]; ok {
		out = append(out, *n)
	}
	for _, id := range p.ReplicaNodes {
		if n, ok := c.nodes[id]; ok {
			out = append(out, *n)
		}
	}
	return out
}

// IsPrimary looks p up again under the lock, as the reference did.
func (c *Cluster[N]) IsPrimary(p *Partition, self string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.partitions[p.ID].PrimaryNode == self
}

// IsReplica looks p up again under the lock, as the reference did.
func (c *Cluster[N]) IsReplica(p *Partition, self string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Contains(c.partitions[p.ID].ReplicaNodes, self)
}
