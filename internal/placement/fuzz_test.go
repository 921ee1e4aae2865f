package placement

import (
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
