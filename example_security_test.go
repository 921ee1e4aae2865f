package clusterkit_test

// Examples of the access control: tokens from a file, read tokens, reloads.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/clusterkit/clusterkit"
)

// A node whose tokens come from a file, with reads protected too: the file
// is re-read when it changes (and on ReloadAuth, which a program calls on
// SIGHUP), so a token is rotated without a restart.
func ExampleClusterKit_ReloadAuth() {
	dir, err := os.MkdirTemp("", "clusterkit-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "tokens")
	// The first admin token is the one this node sends to the others.
	if err := os.WriteFile(file, []byte("old-admin-token\nread dashboard-token\n"), 0o600); err != nil {
		panic(err)
	}
	ck, err := clusterkit.New(clusterkit.Options{
		NodeID: "node-1", HTTPAddr: "127.0.0.1:0",
		AuthTokenFile: file, AuthReads: true,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	if err := ck.Start(context.Background()); err != nil {
		panic(err)
	}
	defer ck.Stop(context.Background())

	get := func(token string) int {
		req, _ := http.NewRequest("GET", "http://"+ck.AdvertiseAddr()+"/cluster", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	fmt.Println("no token:", get(""), "read token:", get("dashboard-token"))

	// One node's step of a rotation: the new admin token, and no old one.
	if err := os.WriteFile(file, []byte("new-admin-token\nread dashboard-token\n"), 0o600); err != nil {
		panic(err)
	}
	if err := ck.ReloadAuth(); err != nil {
		panic(err)
	}
	fmt.Println("old admin token:", get("old-admin-token"), "new admin token:", get("new-admin-token"))
	// Output:
	// no token: 401 read token: 200
	// old admin token: 401 new admin token: 200
}

// The default limits of a node's port, and a tighter set for a node that
// faces many clients: zero fields keep their default.
func ExampleDefaultHTTPLimits() {
	l := clusterkit.DefaultHTTPLimits()
	fmt.Printf("streams: %d per node, %d per client; failed logins: %d, then %g/s\n",
		l.MaxEventStreams, l.MaxEventStreamsPerClient, l.AuthFailureBurst, l.AuthFailuresPerSecond)

	o := clusterkit.DefaultOptions()
	o.NodeID, o.HTTPAddr = "node-1", ":8080"
	o.HTTPLimits.MaxEventStreamsPerClient = 2
	fmt.Println(o.Validate())
	// Output:
	// streams: 256 per node, 16 per client; failed logins: 10, then 2/s
	// <nil>
}
