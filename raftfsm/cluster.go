package raftfsm

import "github.com/clusterkit/clusterkit/internal/keyhash"

// Cluster is the whole cluster as GetCluster and GET /cluster show it (the
// reference library's shape, plus hash configuration and versions).
type Cluster struct {
	ID   string `json:"id"` // the cluster name (the reference's field)
	Name string `json:"name"`
	// ClusterID is the cluster's random 128-bit identity (32 hex digits),
	// minted at bootstrap: two clusters with one name still differ here.
	ClusterID    string        `json:"cluster_id"`
	Nodes        []Node        `json:"nodes"`
	PartitionMap *PartitionMap `json:"partition_map"`
	Config       *Config       `json:"config"`
	HashConfig   *HashConfig   `json:"hash_config"`
	// Version is the Raft index of the last change to config, members or table.
	Version      uint64 `json:"version"`
	TableVersion uint64 `json:"table_version"`
	Health       string `json:"health"`
}

// PartitionMap holds the partitions by ID.
type PartitionMap struct {
	Partitions map[string]*Partition `json:"partitions"`
}

// Config is the committed cluster configuration.
type Config struct {
	ClusterName       string `json:"cluster_name"`
	PartitionCount    int    `json:"partition_count"`
	ReplicationFactor int    `json:"replication_factor"`
	MaxVoters         int    `json:"max_voters"`
}

// HashConfig tells any client how to map a key to a partition itself.
type HashConfig struct {
	Algorithm      string `json:"algorithm"`
	Formula        string `json:"formula"`
	PartitionCount int    `json:"partition_count"`
	IDFormat       string `json:"partition_id_format"`
}

// Cluster builds the Cluster document of this view (a fresh value the caller owns;
// nodes and partitions inside are shared read-only with the view).
func (v *View) Cluster() *Cluster {
	c := &Cluster{
		Nodes:        v.members,
		PartitionMap: &PartitionMap{Partitions: make(map[string]*Partition, len(v.parts))},
		Version:      v.version,
		TableVersion: v.tableVersion,
		Health:       v.health.Status,
	}
	if c.Nodes == nil {
		c.Nodes = []Node{}
	}
	for i := range v.parts {
		c.PartitionMap.Partitions[v.parts[i].ID] = &v.parts[i]
	}
	if cfg := v.config; cfg != nil {
		c.ID, c.Name, c.ClusterID = cfg.GetClusterName(), cfg.GetClusterName(), cfg.GetClusterId()
		c.Config = &Config{
			ClusterName:       cfg.GetClusterName(),
			PartitionCount:    int(cfg.GetPartitionCount()),
			ReplicationFactor: int(cfg.GetReplicationFactor()),
			MaxVoters:         int(cfg.GetMaxVoters()),
		}
		algo := keyhash.Algorithm(cfg.GetKeyHash())
		c.HashConfig = &HashConfig{
			Algorithm:      algo.String(),
			Formula:        algo.Description(),
			PartitionCount: int(cfg.GetPartitionCount()),
			IDFormat:       "partition-%d",
		}
	}
	return c
}
