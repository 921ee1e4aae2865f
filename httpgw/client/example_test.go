package client_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"
)

// The examples talk to an in-memory stand-in for a node's gateway
// (fakeGateway); against a real node, pass its address, e.g.
// client.New("http://10.0.0.5:8080", client.WithToken(token)).

func ExampleClient_Cluster() {
	gw := newFakeGateway()
	defer gw.Close()
	c, err := client.New(gw.srv.URL)
	if err != nil {
		panic(err)
	}
	doc, err := c.Cluster(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("cluster", doc.Cluster.Name, "version", doc.Cluster.Version, "leader", doc.Leader)
	for _, n := range doc.Cluster.Nodes {
		fmt.Println(n.ID, n.IP, n.Status, "kv="+n.Services["kv"])
	}
	h := doc.HashConfig
	fmt.Printf("hash: %s, %s, modulo %d, %q\n", h.Algorithm, h.Encoding, h.Modulo, h.Format)

	// Asking again sends the ETag: an unchanged cluster answers 304, and
	// the client returns the document it already has.
	again, _ := c.Cluster(context.Background())
	fmt.Println("same document:", again == doc)
	// Output:
	// cluster demo version 14 leader node-1
	// node-1 10.0.0.1:8080 active kv=10.0.0.1:9080
	// node-2 10.0.0.2:8080 active kv=10.0.0.2:9080
	// hash: md5, big_endian_uint32, modulo 8, "partition-%d"
	// same document: true
}

func ExampleClient_Watch() {
	gw := newFakeGateway()
	gw.dropAfter = 3 // the connection drops every three events: Watch resumes
	defer gw.Close()
	c, _ := client.New(gw.srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for ev, err := range c.Watch(ctx, client.WatchOptions{Kinds: []string{client.KindNodeJoin}, MinBackoff: time.Millisecond}) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println(ev.Seq, ev.Kind, ev.NodeJoin.Node.ID)
		if n++; n == 5 {
			break
		}
	}
	// Output:
	// 14.0 node_join node-1
	// 14.1 node_join node-2
	// 14.2 node_join node-1
	// 14.3 node_join node-2
	// 14.4 node_join node-1
}

func ExampleNewRouter() {
	gw := newFakeGateway()
	defer gw.Close()
	c, _ := client.New(gw.srv.URL)
	r, err := client.NewRouter(context.Background(), c)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	// No request per key: the router maps keys with hash_config and its
	// copy of the partition map, which it keeps current in the background.
	d, err := r.Locate("user:123")
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Key, "->", d.Partition, "primary", d.Primary.ID, "at", d.Primary.Services["kv"])
	for _, n := range d.Replicas {
		fmt.Println("replica", n.ID)
	}
	// Output:
	// user:123 -> partition-0 primary node-1 at 10.0.0.1:9080
	// replica node-2
}

func ExampleError() {
	gw := newFakeGateway()
	defer gw.Close()
	c, _ := client.New(gw.srv.URL)
	_, err := c.Node(context.Background(), "node-9")
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Code)
	}
	// Output:
	// 404 unknown_node
}
