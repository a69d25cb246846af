package uidlist

import "slices"

// sortNew orders new message files as Dovecot 2.3 does before it gives them
// UIDs (maildir_filename_sort_cmp on the names of Entry.sortKey): by the
// decimal timestamp the name starts with, then by the microseconds of an
// "M<usecs>" part in the name's second dot-separated field, then by the rest
// of the name byte by byte up to the info part, a name's end comparing as
// NUL and the start of its info part as ':' (bytes compared as signed chars,
// as on x86). Names it ranks equal keep the order they were given in
// (glibc's qsort is a stable merge sort for such arrays).
func sortNew(files []newFile) {
	slices.SortStableFunc(files, func(a, b newFile) int { return compareNames(a.key, b.key) })
}

// compareNames is maildir_filename_sort_cmp, with C's integer arithmetic:
// time_t accumulation, the difference truncated to int, int microseconds.
func compareNames(a, b string) int {
	secsA, restA := leadingSecs(a)
	secsB, restB := leadingSecs(b)
	ret := int32(secsA - secsB)
	if ret == 0 {
		ua, okA := usecs(restA)
		ub, okB := usecs(restB)
		if okA && okB {
			ret = ua - ub
		}
		if ret == 0 {
			ret = baseCompare(restA, restB)
		}
	}
	return int(ret)
}

func leadingSecs(s string) (int64, string) {
	var v int64
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		v = v*10 + int64(s[i]-'0')
		i++
	}
	return v, s[i:]
}

// usecs finds "M<digits>" in the field after the timestamp: s must start
// with '.', and the search stops at the next '.' or ':'.
func usecs(s string) (int32, bool) {
	if len(s) == 0 || s[0] != '.' {
		return 0, false
	}
	for i := 1; i < len(s) && s[i] != '.' && s[i] != ':'; i++ {
		if s[i] == 'M' {
			var v int32
			for j := i + 1; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
				v = v*10 + int32(s[j]-'0')
			}
			return v, true
		}
	}
	return 0, false
}

// baseCompare is maildir_filename_base_cmp: equal when both reach ':' or
// the end together, else the difference of the first differing bytes as
// signed chars (the end counting as NUL).
func baseCompare(a, b string) int32 {
	i := 0
	for {
		ca, cb := at(a, i), at(b, i)
		if ca != cb || ca == ':' || ca == 0 {
			if (ca == 0 || ca == ':') && (cb == 0 || cb == ':') {
				return 0
			}
			return int32(int8(ca)) - int32(int8(cb))
		}
		i++
	}
}

func at(s string, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}
