// Package nodefile keeps a node's small local identity file in its data
// directory: the node ID, the cluster it belongs to and the incarnation it
// was last admitted with; and, in progress.dat, the last delivered event and
// the last time the node knew itself alive.
package nodefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Name is the file name inside the data directory.
const Name = "node.json"

// File is the persisted content.
type File struct {
	NodeID string `json:"node_id"`
	// ClusterID is the cluster this directory belongs to, written once the
	// node knows it: the directory is never used for another cluster.
	ClusterID string `json:"cluster_id,omitempty"`
	// Incarnation is the last incarnation the cluster admitted this node
	// with (the cluster assigns them; older versions counted starts here).
	Incarnation uint64 `json:"incarnation"`
	// LastAliveUnixNano is from older versions, which refreshed it here;
	// progress.dat now records liveness every second and the later of the two
	// counts.
	LastAliveUnixNano int64 `json:"last_alive_unix_nano"`
	// The seq of the last event delivered to subscribers, so a restart does
	// not deliver the replayed history again.
	LastDeliveredIndex uint64 `json:"last_delivered_index"`
	LastDeliveredSub   uint32 `json:"last_delivered_sub"`
}

// ErrWrongNode means the data directory belongs to another node ID.
var ErrWrongNode = errors.New("data directory belongs to another node")

// Open reads dir's node file, creating it for a new node, and checks that it
// belongs to nodeID.
func Open(dir, nodeID string) (File, error) {
	f, err := Read(dir, nodeID)
	if errors.Is(err, os.ErrNotExist) {
		f = File{NodeID: nodeID}
		return f, Write(dir, f)
	}
	return f, err
}

// Read reads dir's node file without creating it and checks that it
// belongs to nodeID (an error wrapping os.ErrNotExist when there is none).
func Read(dir, nodeID string) (File, error) {
	path := filepath.Join(dir, Name)
	var f File
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return File{}, fmt.Errorf("%s is corrupt: %w", path, err)
	}
	if f.NodeID != nodeID {
		return File{}, fmt.Errorf("%w: %s was written by node %q, this is %q", ErrWrongNode, path, f.NodeID, nodeID)
	}
	return f, nil
}

// Write replaces the node file atomically (write to a temporary file, fsync, rename).
func Write(dir string, f File) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(dir, Name, data)
}

// WriteFileAtomic replaces dir/name with data: a temporary file, fsync,
// rename, and fsync of the directory so that the rename survives a crash.
func WriteFileAtomic(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, name+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir makes the entries of dir (a rename, a removal) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
