package raftfsm

import (
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/messages"
)

// ignoreIfUnknown is set in the type byte of commands that a node which does
// not know the type may skip without diverging (forward compatibility).
const ignoreIfUnknown byte = 0x80

// cmdType is the command type: the field number of Command's oneof.
type cmdType byte

// Command types; their values are the oneof field numbers and never change.
const (
	typeSetConfig               cmdType = 16
	typeRegisterNode            cmdType = 17
	typeSetNodeStatus           cmdType = 18
	typeRemoveNode              cmdType = 19
	typeSetPartitionTable       cmdType = 20
	typeSetCustomData           cmdType = 21
	typeDeleteCustomData        cmdType = 22
	typeCompareAndSetCustomData cmdType = 23
	typeNoop                    cmdType = 24
	typeSetVoter                cmdType = 25
	typeMarkReady               cmdType = 26
	typeDrainNode               cmdType = 27
	typeSetDrain                cmdType = 28
	typeSetRebalancePaused      cmdType = 29
)

// skippable lists the types that do not affect coordination, so an older node
// may ignore them (custom data and barriers).
var skippable = map[cmdType]bool{
	typeSetCustomData:           true,
	typeDeleteCustomData:        true,
	typeCompareAndSetCustomData: true,
	typeNoop:                    true,
}

// typeOf returns the type of cmd, or 0 when its op is unset.
func typeOf(cmd *messages.Command) cmdType {
	switch cmd.GetOp().(type) {
	case *messages.Command_SetConfig:
		return typeSetConfig
	case *messages.Command_RegisterNode:
		return typeRegisterNode
	case *messages.Command_SetNodeStatus:
		return typeSetNodeStatus
	case *messages.Command_RemoveNode:
		return typeRemoveNode
	case *messages.Command_SetPartitionTable:
		return typeSetPartitionTable
	case *messages.Command_SetCustomData:
		return typeSetCustomData
	case *messages.Command_DeleteCustomData:
		return typeDeleteCustomData
	case *messages.Command_CompareAndSetCustomData:
		return typeCompareAndSetCustomData
	case *messages.Command_Noop:
		return typeNoop
	case *messages.Command_SetVoter:
		return typeSetVoter
	case *messages.Command_MarkReady:
		return typeMarkReady
	case *messages.Command_DrainNode:
		return typeDrainNode
	case *messages.Command_SetDrain:
		return typeSetDrain
	case *messages.Command_SetRebalancePaused:
		return typeSetRebalancePaused
	}
	return 0
}

// Encode returns the log entry bytes of cmd: type byte + proto payload.
func Encode(cmd *messages.Command) ([]byte, error) {
	t := typeOf(cmd)
	if t == 0 {
		return nil, errorf(errMalformedCommand, "command has no operation")
	}
	b := byte(t)
	if skippable[t] {
		b |= ignoreIfUnknown
	}
	return proto.MarshalOptions{Deterministic: true}.MarshalAppend([]byte{b}, cmd)
}

// decode parses a log entry. skip is true when the entry has a type this
// version does not know but that is marked IgnoreIfUnknown; an unknown type
// without that bit is ErrUnknownCommand.
func decode(data []byte) (cmd *messages.Command, skip bool, err error) {
	if len(data) == 0 {
		return nil, false, errorf(errMalformedCommand, "empty entry")
	}
	t := cmdType(data[0] &^ ignoreIfUnknown)
	if t < typeSetConfig || t > typeSetRebalancePaused {
		if data[0]&ignoreIfUnknown != 0 {
			return nil, true, nil
		}
		return nil, false, errorf(errUnknownCommand, "type %d", t)
	}
	cmd = &messages.Command{}
	if err := proto.Unmarshal(data[1:], cmd); err != nil {
		return nil, false, errorf(errMalformedCommand, "%v", err)
	}
	if typeOf(cmd) != t {
		return nil, false, errorf(errMalformedCommand, "type byte %d does not match payload type %d", t, typeOf(cmd))
	}
	return cmd, false, nil
}
