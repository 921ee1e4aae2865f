package actors

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/clusterkit/clusterkit/internal/rpc"
	"github.com/clusterkit/clusterkit/messages"
)

// fwdPeers is a leader as forwardBatch sees it: it answers single proposals
// with their position, and batches as batchAnswer says.
type fwdPeers struct {
	Peers
	singles, batches int
	batchAnswer      func(req *messages.ProposeBatch) (*messages.ProposeBatchResult, error)
}

func (p *fwdPeers) Propose(_ context.Context, _ string, req *messages.Propose) (*messages.ProposeResult, error) {
	p.singles++
	if !req.GetForwarded() {
		return nil, fmt.Errorf("not marked forwarded")
	}
	return &messages.ProposeResult{Index: uint64(100 + p.singles)}, nil
}

func (p *fwdPeers) ProposeBatch(_ context.Context, _ string, req *messages.ProposeBatch) (*messages.ProposeBatchResult, error) {
	p.batches++
	for _, pr := range req.GetProposals() {
		if !pr.GetForwarded() {
			return nil, fmt.Errorf("not marked forwarded")
		}
	}
	return p.batchAnswer(req)
}

func pending(n int) []pendingForward {
	out := make([]pendingForward, n)
	for i := range out {
		out[i] = pendingForward{cmd: &messages.Command{}}
	}
	return out
}

func TestForwardBatch(t *testing.T) {
	ok := func(req *messages.ProposeBatch) (*messages.ProposeBatchResult, error) {
		res := &messages.ProposeBatchResult{}
		for i := range req.GetProposals() {
			res.Results = append(res.Results, &messages.ProposeResult{Index: uint64(i + 1)})
		}
		return res, nil
	}
	t.Run("one proposal goes alone", func(t *testing.T) {
		p := &fwdPeers{batchAnswer: ok}
		res := forwardBatch(context.Background(), p, "leader:1", pending(1))
		if p.singles != 1 || p.batches != 0 || res[0].GetIndex() != 101 {
			t.Fatalf("singles %d batches %d, result %v", p.singles, p.batches, res)
		}
	})
	t.Run("several go in one batch, results in order", func(t *testing.T) {
		p := &fwdPeers{batchAnswer: ok}
		res := forwardBatch(context.Background(), p, "leader:1", pending(3))
		if p.singles != 0 || p.batches != 1 {
			t.Fatalf("singles %d batches %d", p.singles, p.batches)
		}
		for i, r := range res {
			if r.GetIndex() != uint64(i+1) || r.GetError() != "" {
				t.Errorf("result %d: %v", i, r)
			}
		}
	})
	t.Run("an older leader without batches: one at a time", func(t *testing.T) {
		p := &fwdPeers{batchAnswer: func(*messages.ProposeBatch) (*messages.ProposeBatchResult, error) {
			return nil, &rpc.RemoteError{Addr: "leader:1", Path: rpc.PathProposeBatch, Status: http.StatusNotFound}
		}}
		res := forwardBatch(context.Background(), p, "leader:1", pending(3))
		if p.batches != 1 || p.singles != 3 {
			t.Fatalf("singles %d batches %d", p.singles, p.batches)
		}
		for i, r := range res {
			if r.GetIndex() != uint64(101+i) {
				t.Errorf("result %d: %v", i, r)
			}
		}
	})
	t.Run("a failed batch fails every proposal, outcome unknown", func(t *testing.T) {
		p := &fwdPeers{batchAnswer: func(*messages.ProposeBatch) (*messages.ProposeBatchResult, error) {
			return nil, fmt.Errorf("connection reset")
		}}
		for _, r := range forwardBatch(context.Background(), p, "leader:1", pending(2)) {
			if r.GetCode() != CodeUnknown || !strings.Contains(r.GetError(), "leader:1") {
				t.Errorf("result %v, want %s naming the leader", r, CodeUnknown)
			}
		}
	})
	t.Run("a batch never sent: not in the leader's log", func(t *testing.T) {
		p := &fwdPeers{batchAnswer: func(*messages.ProposeBatch) (*messages.ProposeBatchResult, error) {
			return nil, fmt.Errorf("%w: dial: connection refused", rpc.ErrNotSent)
		}}
		for _, r := range forwardBatch(context.Background(), p, "leader:1", pending(2)) {
			if r.GetCode() != CodeNotLeader {
				t.Errorf("result %v, want %s", r, CodeNotLeader)
			}
		}
	})
	t.Run("an answer of the wrong length fails every proposal", func(t *testing.T) {
		p := &fwdPeers{batchAnswer: func(*messages.ProposeBatch) (*messages.ProposeBatchResult, error) {
			return &messages.ProposeBatchResult{Results: []*messages.ProposeResult{{Index: 1}}}, nil
		}}
		for _, r := range forwardBatch(context.Background(), p, "leader:1", pending(2)) {
			if r.GetCode() != CodeUnknown {
				t.Errorf("result %v, want %s", r, CodeUnknown)
			}
		}
	})
}
