package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkSegmentSync compares what one group of accepts costs the machine
// when written at the end of a growing segment (as the inbox log writes)
// and when written over a segment filled with zeros beforehand: a 70 KB
// write and fdatasync per op. Besides ns/op it reports the CPU of the whole
// machine per op (/proc/stat), which counts the file system's own threads
// too. docs/performance.md, "Inbox segments written over zeros".
func BenchmarkSegmentSync(b *testing.B) {
	const group = 70 << 10
	rec := bytes.Repeat([]byte("postee-"), group/7)
	for _, zeroed := range []bool{false, true} {
		name := "append"
		if zeroed {
			name = "over-zeros"
		}
		b.Run(name, func(b *testing.B) {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "seg"), os.O_CREATE|os.O_RDWR, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if zeroed {
				// Room for every op of this run, zeros on disk.
				if _, err := f.Write(make([]byte, (b.N+1)*len(rec))); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			cpu0, err := machineCPUTicks()
			if err != nil {
				b.Skip(err)
			}
			b.ResetTimer()
			var at int64
			for i := 0; i < b.N; i++ {
				if _, err := f.WriteAt(rec, at); err != nil {
					b.Fatal(err)
				}
				if err := fdatasync(f); err != nil {
					b.Fatal(err)
				}
				at += int64(len(rec))
			}
			b.StopTimer()
			cpu1, err := machineCPUTicks()
			if err != nil {
				b.Fatal(err)
			}
			// /proc/stat counts in USER_HZ (100 per second on Linux).
			b.ReportMetric(float64(cpu1-cpu0)*1e4/float64(b.N), "machine-cpu-µs/op")
		})
	}
}

// machineCPUTicks is the busy time of all CPUs from /proc/stat's first
// line: user, nice, system, irq and softirq, in USER_HZ ticks.
func machineCPUTicks() (int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	var user, nice, system, idle, iowait, irq, softirq int64
	if _, err := fmt.Sscanf(string(b), "cpu %d %d %d %d %d %d %d", &user, &nice, &system, &idle, &iowait, &irq, &softirq); err != nil {
		return 0, fmt.Errorf("/proc/stat: %w", err)
	}
	return user + nice + system + irq + softirq, nil
}
