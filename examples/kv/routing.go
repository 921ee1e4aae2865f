package main

import (
	"fmt"
	"net"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/httpgw/client"
)

// The smart client routes with ClusterKit's typed gateway client: its
// Router maps a key to its partition with the cluster's hash_config and
// holds the owners, as nodes with their services. What is the kv store's
// own is below: where a node's kv service is, and the owners in the order
// the client tries them.

// route returns the owners of key's partition in r's table, primary first,
// with their kv addresses.
func route(r *client.Router, key string) ([]owner, error) {
	d, err := r.Locate(key)
	if err != nil {
		return nil, err
	}
	if d.Primary == nil {
		return nil, fmt.Errorf("%s has no primary in table version %d", d.Partition, d.TableVersion)
	}
	owners := []owner{{id: d.Primary.ID, kv: kvAddr(d.Primary)}}
	for i := range d.Replicas {
		owners = append(owners, owner{id: d.Replicas[i].ID, kv: kvAddr(&d.Replicas[i])})
	}
	return owners, nil
}

// kvAddr is the address n registered as its "kv" service ("" if none).
func kvAddr(n *client.Node) string {
	if addr := n.Services["kv"]; addr != "" {
		return serviceAddr(addr, n.IP)
	}
	return ""
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

// memberKV is node's kv address as ck's table has it: "" when node is not
// a member (removed) or has no kv service.
func memberKV(ck *clusterkit.ClusterKit, node string) string {
	for _, n := range ck.GetCluster().Nodes {
		if n.ID == node {
			return serviceAddr(n.Services["kv"], n.IP)
		}
	}
	return ""
}
