package benchkit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUSeconds is utime + stime of a process (all its threads), USER_HZ =
// 100; 0 for pid <= 0 or a process that is gone.
func CPUSeconds(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return float64(ut+st) / 100
}

// Rchar is the bytes a process read with read(2) and friends (sockets
// included), from /proc/PID/io; 0 for pid <= 0, -1 when unreadable.
func Rchar(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return -1
}

// ProcStatusKiB is a kB field of /proc/PID/status (VmRSS, VmHWM).
func ProcStatusKiB(pid int, field string) (int64, error) {
	if pid <= 0 {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// SelfCPU is this process's user + system CPU seconds.
func SelfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// MachineSeconds is the CPU seconds the whole machine (all cores) spent
// busy (user, nice, system, irq, softirq) and stolen by the hypervisor,
// from the first line of /proc/stat (USER_HZ = 100).
func MachineSeconds() (busy, steal float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)[1:]
	var v [8]uint64
	for i := range v {
		if i < len(f) {
			v[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
	}
	// user nice system idle iowait irq softirq steal (guest is in user)
	return float64(v[0]+v[1]+v[2]+v[5]+v[6]) / 100, float64(v[7]) / 100
}

// Sample is the counters at one instant; differences of two samples are
// what the benchmarks report.
type Sample struct {
	CPU, S3CPU  float64 // of the registry (pid) and the S3 server (s3pid)
	Self        float64 // this process
	Busy, Steal float64 // the machine
	Rchar       int64   // the registry's read() bytes
	T           time.Time
}

func TakeSample(pid, s3pid int) Sample {
	s := Sample{CPU: CPUSeconds(pid), S3CPU: CPUSeconds(s3pid), Self: SelfCPU(), Rchar: Rchar(pid)}
	s.Busy, s.Steal = MachineSeconds()
	s.T = time.Now()
	return s
}
