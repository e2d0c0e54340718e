/**
 * CPU time of ONNX Runtime's threads in this process, read per thread from /proc/self/task/*\/stat, so the metrics
 * can tell inference from the rest of the process's CPU time. Every session's worker thread reports its
 * own thread id and the intra-op pool threads ONNX Runtime started while creating the session (onnxWorker.js); this
 * module sums their user + system time. Linux only: elsewhere there are no ids and the sum is 0.
 */
import fs from 'node:fs';

/** USER_HZ: clock ticks per second in /proc stat files (100 on every Linux architecture Node supports). */
const TICKS_PER_SECOND = 100;

const threads = new Set<number>();
/** The last CPU time read of every known thread, so a thread that ended keeps counting (the total never falls). */
const lastSeconds = new Map<number, number>();

export function registerOnnxThreads(ids: readonly number[]): void {
  for (const id of ids) if (Number.isInteger(id) && id > 0) threads.add(id);
}

/** utime + stime of one thread of this process, in seconds; undefined once it has ended. */
export function threadCpuSeconds(tid: number, pid: number | 'self' = 'self'): number | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the parenthesised command name (which may hold spaces): utime is the 12th, stime the 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** The ONNX Runtime threads this process knows of (live or ended). */
export function onnxThreadCount(): number {
  return threads.size;
}

/** CPU seconds used so far by each ONNX Runtime thread (session worker threads and their intra-op pools). */
export function onnxThreadCpu(): { tid: number; seconds: number }[] {
  return [...threads].map((tid) => {
    const seconds = threadCpuSeconds(tid) ?? lastSeconds.get(tid) ?? 0;
    lastSeconds.set(tid, seconds);
    return { tid, seconds };
  });
}

/** CPU seconds used so far by all of ONNX Runtime's threads. */
export function onnxCpuSeconds(): number {
  return onnxThreadCpu().reduce((sum, thread) => sum + thread.seconds, 0);
}
