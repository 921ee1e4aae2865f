package placement

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// decodeInput turns fuzz bytes into Assign arguments:
//
//	[0:2] partitions in [-1, 300]   [2] rf in [-1, 6]   [3] member count ≤ 40
//	then one byte per member (24 names or ""), then the previous table:
//	0xff starts a new partition, other bytes name a member, a dead node or "".
func decodeInput(data []byte) (prev [][]string, members []string, partitions, rf int) {
	next := func() (byte, bool) {
		if len(data) == 0 {
			return 0, false
		}
		b := data[0]
		data = data[1:]
		return b, true
	}
	lo, _ := next()
	hi, _ := next()
	partitions = int(uint16(lo)|uint16(hi)<<8)%302 - 1
	b, _ := next()
	rf = int(b)%8 - 1
	b, _ = next()
	for range int(b) % 41 {
		m, ok := next()
		if !ok {
			break
		}
		if m %= 25; m == 24 {
			members = append(members, "")
		} else {
			members = append(members, "m"+strconv.Itoa(int(m)))
		}
	}
	for len(data) > 0 {
		b, _ := next()
		if b == 0xff || prev == nil {
			prev = append(prev, nil)
			if b == 0xff {
				continue
			}
		}
		var name string
		switch v := int(b) % 30; {
		case v < 24:
			name = "m" + strconv.Itoa(v)
		case v < 29:
			name = "dead" + strconv.Itoa(v-24)
		}
		prev[len(prev)-1] = append(prev[len(prev)-1], name)
	}
	return prev, members, partitions, rf
}

func FuzzAssign(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{64, 0, 3, 5, 0, 1, 2, 3, 4})
	f.Add([]byte{1, 0, 1, 3, 0, 1, 2})
	f.Add([]byte{10, 0, 6, 4, 0, 1, 1, 24, 0, 1, 2, 0xff, 25, 0, 0, 0xff, 29, 3})
	f.Add([]byte{44, 1, 4, 12, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 0xff, 3, 4, 5, 0xff, 6, 7, 8, 0xff, 9, 10, 11})
	f.Add([]byte{200, 0, 5, 6, 0, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0xff, 0, 0xff, 0, 0xff, 0, 0xff, 0, 0xff, 0})
	f.Add([]byte{7, 0, 0, 2, 0, 1, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		prev, members, partitions, rf := decodeInput(data)
		prevCopy, memCopy := cloneTable(prev), slices.Clone(members)

		got := Assign(prev, members, partitions, rf)

		if !equalTables(prev, prevCopy) || !slices.Equal(members, memCopy) {
			t.Fatalf("inputs modified")
		}
		if err := checkTable(got, members, partitions, rf); err != nil {
			t.Fatalf("%v\nprev=%q members=%q P=%d rf=%d\ngot=%q", err, prev, members, partitions, rf, got)
		}
		if err := Validate(got, members, rf); err != nil {
			t.Fatalf("Validate: %v\nprev=%q members=%q P=%d rf=%d\ngot=%q", err, prev, members, partitions, rf, got)
		}
		shuffled := slices.Clone(members)
		slices.Reverse(shuffled)
		shuffled = append(shuffled, "")
		if len(members) > 0 {
			shuffled = append(shuffled, members[len(members)/2]) // duplicate
		}
		if !equalTables(Assign(prev, shuffled, partitions, rf), got) {
			t.Fatalf("result depends on member order or duplicates")
		}
		if again := Assign(got, members, partitions, rf); !equalTables(again, got) {
			t.Fatalf("balanced table is not a fixed point:\n%q\n%q", got, again)
		}
		for i := range got {
			for j := range got[i] {
				got[i][j] = "clobbered"
			}
		}
		if !equalTables(prev, prevCopy) {
			t.Fatalf("result aliases prev")
		}
	})
}

// decodeNoPrimary takes a NoPrimary list off the front of data (a count
// byte ≤ 7, then one byte per name: a member, a dead node or "") and leaves
// the rest to decodeInput.
func decodeNoPrimary(data []byte) (in Input) {
	if len(data) > 0 {
		k := int(data[0]) % 8
		data = data[1:]
		for ; k > 0 && len(data) > 0; k-- {
			switch v := int(data[0]) % 30; {
			case v < 24:
				in.NoPrimary = append(in.NoPrimary, "m"+strconv.Itoa(v))
			case v < 29:
				in.NoPrimary = append(in.NoPrimary, "dead"+strconv.Itoa(v-24))
			default:
				in.NoPrimary = append(in.NoPrimary, "")
			}
			data = data[1:]
		}
	}
	in.Prev, in.Members, in.Partitions, in.RF = decodeInput(data)
	return in
}

func FuzzAssignInput(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 64, 0, 3, 5, 0, 1, 2, 3, 4})
	f.Add([]byte{2, 0, 1, 128, 0, 2, 4, 0, 1, 2, 3})
	f.Add([]byte{3, 0, 1, 2, 100, 0, 2, 6, 0, 1, 2, 3, 4, 5})
	f.Add([]byte{1, 3, 50, 0, 1, 4, 0, 1, 2, 3, 0, 1, 0xff, 2, 3, 0xff, 3, 0})
	f.Add([]byte{4, 0, 1, 2, 3, 200, 0, 3, 5, 0, 1, 2, 3, 4, 0, 1, 2, 0xff, 3, 4, 0})
	f.Add([]byte{2, 0, 25, 7, 0, 2, 2, 0, 1, 0, 0xff, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := decodeNoPrimary(data)
		prevCopy, memCopy, npCopy := cloneTable(in.Prev), slices.Clone(in.Members), slices.Clone(in.NoPrimary)

		got := AssignInput(in)

		if !equalTables(in.Prev, prevCopy) || !slices.Equal(in.Members, memCopy) || !slices.Equal(in.NoPrimary, npCopy) {
			t.Fatalf("inputs modified")
		}
		if err := checkTableInput(got, in); err != nil {
			t.Fatalf("%v\nin=%+v\ngot=%q", err, in, got)
		}
		if err := ValidateInput(got, in); err != nil {
			t.Fatalf("ValidateInput: %v\nin=%+v\ngot=%q", err, in, got)
		}
		if !slices.ContainsFunc(in.NoPrimary, func(x string) bool { return slices.Contains(in.Members, x) && x != "" }) {
			if !equalTables(got, Assign(in.Prev, in.Members, in.Partitions, in.RF)) {
				t.Fatalf("a NoPrimary list without members changed the result")
			}
		}
		shuffled := in
		shuffled.Members = append(slices.Clone(in.Members), "")
		slices.Reverse(shuffled.Members)
		shuffled.NoPrimary = append(slices.Clone(in.NoPrimary), in.NoPrimary...)
		slices.Reverse(shuffled.NoPrimary)
		if !equalTables(AssignInput(shuffled), got) {
			t.Fatalf("result depends on the order of members or NoPrimary, or on duplicates")
		}
		again := in
		again.Prev = got
		if a := AssignInput(again); !equalTables(a, got) {
			t.Fatalf("a valid table is not a fixed point:\n%q\n%q", got, a)
		}
		for i := range got {
			for j := range got[i] {
				got[i][j] = "clobbered"
			}
		}
		if !equalTables(in.Prev, prevCopy) {
			t.Fatalf("result aliases prev")
		}
	})
}

// FuzzJoinsAtOnce checks that several joins in one call give what one at a
// time gives (checkJoinsAtOnce): [0] partitions, [1] rf, [2] old members,
// [3] joiners, [4] arrival-order seed.
func FuzzJoinsAtOnce(f *testing.F) {
	f.Add([]byte{128, 2, 2, 2, 0})
	f.Add([]byte{64, 3, 5, 3, 1})
	f.Add([]byte{10, 5, 1, 7, 2})
	f.Add([]byte{255, 1, 3, 4, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		data = append(data, make([]byte, 5)...)
		n0, add := 1+int(data[2])%12, 2+int(data[3])%8
		partitions := max(1+int(data[0]), n0) // members of old own something
		rf := 1 + int(data[1])%5
		rng := rand.New(rand.NewPCG(uint64(data[4]), 0))
		perm := rng.Perm(40)
		old, joiners := splitNames(perm, n0, add)
		prev := Assign(nil, old, partitions, rf)
		if err := checkJoinsAtOnce(prev, old, joiners, partitions, rf); err != nil {
			t.Fatalf("P=%d RF=%d %v + %v: %v", partitions, rf, old, joiners, err)
		}
	})
}
