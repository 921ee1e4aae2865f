package raftfsm

import (
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/messages"
)

// IgnoreIfUnknown is set in the type byte of commands that a node which does
// not know the type may skip without diverging (forward compatibility).
const IgnoreIfUnknown byte = 0x80

// Type is the command type: the field number of Command's oneof.
type Type byte

// Command types; their values are the oneof field numbers and never change.
const (
	TypeSetConfig               Type = 16
	TypeRegisterNode            Type = 17
	TypeSetNodeStatus           Type = 18
	TypeRemoveNode              Type = 19
	TypeSetPartitionTable       Type = 20
	TypeSetCustomData           Type = 21
	TypeDeleteCustomData        Type = 22
	TypeCompareAndSetCustomData Type = 23
	TypeNoop                    Type = 24
	TypeSetVoter                Type = 25
)

// skippable lists the types that do not affect coordination, so an older node
// may ignore them (custom data and barriers).
var skippable = map[Type]bool{
	TypeSetCustomData:           true,
	TypeDeleteCustomData:        true,
	TypeCompareAndSetCustomData: true,
	TypeNoop:                    true,
}

// TypeOf returns the type of cmd, or 0 when its op is unset.
func TypeOf(cmd *messages.Command) Type {
	switch cmd.GetOp().(type) {
	case *messages.Command_SetConfig:
		return TypeSetConfig
	case *messages.Command_RegisterNode:
		return TypeRegisterNode
	case *messages.Command_SetNodeStatus:
		return TypeSetNodeStatus
	case *messages.Command_RemoveNode:
		return TypeRemoveNode
	case *messages.Command_SetPartitionTable:
		return TypeSetPartitionTable
	case *messages.Command_SetCustomData:
		return TypeSetCustomData
	case *messages.Command_DeleteCustomData:
		return TypeDeleteCustomData
	case *messages.Command_CompareAndSetCustomData:
		return TypeCompareAndSetCustomData
	case *messages.Command_Noop:
		return TypeNoop
	case *messages.Command_SetVoter:
		return TypeSetVoter
	}
	return 0
}

// Encode returns the log entry bytes of cmd: type byte + proto payload.
func Encode(cmd *messages.Command) ([]byte, error) {
	t := TypeOf(cmd)
	if t == 0 {
		return nil, errorf(ErrMalformedCommand, "command has no operation")
	}
	b := byte(t)
	if skippable[t] {
		b |= IgnoreIfUnknown
	}
	return proto.MarshalOptions{Deterministic: true}.MarshalAppend([]byte{b}, cmd)
}

// Decode parses a log entry. skip is true when the entry has a type this
// version does not know but that is marked IgnoreIfUnknown; an unknown type
// without that bit is ErrUnknownCommand.
func Decode(data []byte) (cmd *messages.Command, skip bool, err error) {
	if len(data) == 0 {
		return nil, false, errorf(ErrMalformedCommand, "empty entry")
	}
	t := Type(data[0] &^ IgnoreIfUnknown)
	if t < TypeSetConfig || t > TypeSetVoter {
		if data[0]&IgnoreIfUnknown != 0 {
			return nil, true, nil
		}
		return nil, false, errorf(ErrUnknownCommand, "type %d", t)
	}
	cmd = &messages.Command{}
	if err := proto.Unmarshal(data[1:], cmd); err != nil {
		return nil, false, errorf(ErrMalformedCommand, "%v", err)
	}
	if TypeOf(cmd) != t {
		return nil, false, errorf(ErrMalformedCommand, "type byte %d does not match payload type %d", t, TypeOf(cmd))
	}
	return cmd, false, nil
}
