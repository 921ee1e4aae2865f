package main

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Routing is a client's view of the cluster, built from the JSON of the
// gateway's GET /cluster alone, as a client in any language would build it:
// the hash configuration, the owners of every partition and every node's
// addresses.
type Routing struct {
	// Algorithm is hash_config.algorithm: "md5" or "xxh64".
	Algorithm string
	// PartitionCount is hash_config.partition_count.
	PartitionCount uint32
	// IDFormat is hash_config.partition_id_format ("partition-%d").
	IDFormat string
	// Owners maps a partition ID to its owners, primary first.
	Owners map[string][]string
	// KV maps a node ID to its "kv" service address (host:port).
	KV map[string]string
	// Gateways maps a node ID to its ClusterKit address (for /cluster).
	Gateways map[string]string
	// Version is the state version of the document (its ETag).
	Version uint64
}

// The parts of GET /cluster that routing needs.
type clusterJSON struct {
	Cluster struct {
		Nodes []struct {
			ID       string            `json:"id"`
			IP       string            `json:"ip"`
			Services map[string]string `json:"services"`
		} `json:"nodes"`
		PartitionMap struct {
			Partitions map[string]struct {
				PrimaryNode  string   `json:"primary_node"`
				ReplicaNodes []string `json:"replica_nodes"`
			} `json:"partitions"`
		} `json:"partition_map"`
		HashConfig *hashConfigJSON `json:"hash_config"`
		Version    uint64          `json:"version"`
	} `json:"cluster"`
	HashConfig *hashConfigJSON `json:"hash_config"`
}

type hashConfigJSON struct {
	Algorithm      string `json:"algorithm"`
	PartitionCount uint32 `json:"partition_count"`
	IDFormat       string `json:"partition_id_format"`
}

// ParseRouting builds a Routing from the body of GET /cluster.
func ParseRouting(body []byte) (*Routing, error) {
	var doc clusterJSON
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("cluster document: %w", err)
	}
	hc := doc.HashConfig
	if hc == nil {
		hc = doc.Cluster.HashConfig
	}
	if hc == nil {
		return nil, errors.New("cluster document has no hash_config (no configuration committed yet?)")
	}
	switch hc.Algorithm {
	case "md5", "xxh64":
	default:
		return nil, fmt.Errorf("hash_config.algorithm %q: this client knows md5 and xxh64", hc.Algorithm)
	}
	if hc.PartitionCount == 0 {
		return nil, errors.New("hash_config.partition_count is 0")
	}
	r := &Routing{
		Algorithm: hc.Algorithm, PartitionCount: hc.PartitionCount, IDFormat: hc.IDFormat,
		Owners: map[string][]string{}, KV: map[string]string{}, Gateways: map[string]string{},
		Version: doc.Cluster.Version,
	}
	if r.IDFormat == "" {
		r.IDFormat = "partition-%d"
	}
	for _, n := range doc.Cluster.Nodes {
		r.Gateways[n.ID] = n.IP
		if addr := n.Services["kv"]; addr != "" {
			r.KV[n.ID] = serviceAddr(addr, n.IP)
		}
	}
	for id, p := range doc.Cluster.PartitionMap.Partitions {
		if p.PrimaryNode == "" {
			continue // unowned: requests for it fail until a table assigns it
		}
		r.Owners[id] = append([]string{p.PrimaryNode}, p.ReplicaNodes...)
	}
	return r, nil
}

// serviceAddr completes a service address registered without a host
// (":9081") with the host of the node's own address.
func serviceAddr(addr, nodeAddr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "" {
		return addr
	}
	nodeHost, _, err := net.SplitHostPort(nodeAddr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(nodeHost, port)
}

// PartitionNumber maps key to its partition number with the published
// algorithm: BigEndian.Uint32(md5(key)[0:4]) % n, or xxhash64(key) % n.
func PartitionNumber(algorithm, key string, n uint32) (uint32, error) {
	if n == 0 {
		return 0, errors.New("partition count is 0")
	}
	switch algorithm {
	case "md5":
		sum := md5.Sum([]byte(key))
		return binary.BigEndian.Uint32(sum[:4]) % n, nil
	case "xxh64":
		return uint32(xxhash.Sum64String(key) % uint64(n)), nil
	}
	return 0, fmt.Errorf("unknown hash algorithm %q", algorithm)
}

// PartitionOf returns the ID of key's partition.
func (r *Routing) PartitionOf(key string) (string, error) {
	n, err := PartitionNumber(r.Algorithm, key, r.PartitionCount)
	if err != nil {
		return "", err
	}
	return strings.Replace(r.IDFormat, "%d", fmt.Sprint(n), 1), nil
}

// Locate returns key's partition and its owners, primary first.
func (r *Routing) Locate(key string) (string, []string, error) {
	id, err := r.PartitionOf(key)
	if err != nil {
		return "", nil, err
	}
	owners := r.Owners[id]
	if len(owners) == 0 {
		return id, nil, fmt.Errorf("%s has no owner in cluster version %d", id, r.Version)
	}
	return id, owners, nil
}
