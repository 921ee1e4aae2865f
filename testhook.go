package clusterkit

import (
	"github.com/clusterkit/clusterkit/internal/testhook"
	"github.com/clusterkit/clusterkit/raftfsm"
)

func init() {
	testhook.ObserveApplied = func(opts any, fn func(*raftfsm.Applied)) {
		opts.(*Options).observeApplied = fn
	}
}
