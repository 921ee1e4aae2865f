package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/internal/logging"
)

// recoverUsage heads `node recover -h`.
const recoverUsage = `usage: node recover -id ID -data-dir DIR [-http ADDR] [-advertise ADDR] [-peers id=addr,...]

Quorum-loss recovery, run offline on a stopped node's data directory, when a
majority of the cluster's voters is gone for good (not for an outage: voters
that come back recover the cluster by themselves). It rewrites the node's Raft
state into a new configuration of this node plus -peers (the other survivors,
each recovered the same way), all voters, and keeps the committed data. Start
the node again afterwards (no -join needed): it leads, removes the lost
members (NodeLeave, reason removed_by_admin), and new nodes can join.
Never recover both sides of a partition: that forks the cluster.

-http and -advertise must be what the node runs with (-http is also checked
to be free: the node must be stopped).

`

// runRecover is `node recover`: it prints one line saying what it did, or
// returns the error (main exits 1).
func runRecover(args []string, stdout, stderr io.Writer) error {
	fs := newConfigFlags("node recover")
	fs.SetOutput(stderr)
	var (
		id        = fs.String("id", "", "node ID; required")
		dataDir   = fs.String("data-dir", "", "the node's data directory; required")
		httpAddr  = fs.String("http", ":8080", "the node's listen address")
		advertise = fs.String("advertise", "", "the node's advertise address (default derived from -http as the node does)")
		peers     = fs.String("peers", "", "the other survivors, comma-separated id=address (their advertise addresses); empty: this node alone")
		logLevel  = fs.String("log-level", "warn", "debug, info, warn or error")
	)
	fs.local["peers"] = true // survivors of one recovery, not configuration
	pos, done, err := fs.parseCommand(args, stdout, recoverUsage)
	if done || err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: recover: unexpected arguments %q", errUsage, pos)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	survivors, err := parsePeers(*peers)
	if err != nil {
		return err
	}
	o := clusterkit.DefaultOptions()
	o.NodeID, o.DataDir, o.HTTPAddr, o.AdvertiseAddr = *id, *dataDir, *httpAddr, *advertise
	o.Logger = logging.Default(os.Stderr, level)
	res, err := clusterkit.RecoverCluster(o, survivors)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	fmt.Fprintf(stdout, "recovered node=%s %s\n", o.NodeID, res)
	return nil
}

// parsePeers reads "id=addr,id=addr" (spaces and empty items ignored).
func parsePeers(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		id, addr, ok := strings.Cut(item, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("-peers: %q is not id=address", item)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("-peers: %q is listed twice", id)
		}
		out[id] = addr
	}
	return out, nil
}
