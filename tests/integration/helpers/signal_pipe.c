/* A program whose signal handler writes to a self-pipe while its main thread is inside the
 * firewall client library: the classic async-signal-safe write(2), which must never wait for a
 * lock the interrupted thread holds.
 *
 * usage: signal_pipe HOST PORT SECONDS
 *
 * A UDP socket sends to HOST:PORT (remote: associated through the gateway), so the library has a
 * UDP association; the self-pipe's write end is moved to descriptor 5000 (past the 4,096 numbers
 * an earlier library could rule out without its lock). Then for SECONDS the main thread sends
 * datagrams and asks getpeername/getsockname (each takes the library's table lock) while an
 * interval timer fires every 200 us and the handler writes one byte to the pipe and asks the UDP
 * socket's getsockname (also async-signal-safe, and a table lookup when not interrupting one).
 * Prints one JSON line. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int pipe_write = -1;
static int udp = -1;
static volatile sig_atomic_t handled = 0;
static volatile sig_atomic_t write_failed = 0;

static void on_alarm(int sig) {
  (void)sig;
  int saved = errno;
  if (write(pipe_write, "x", 1) != 1 && errno != EAGAIN) write_failed = 1;
  struct sockaddr_storage a;
  socklen_t length = sizeof a;
  if (getsockname(udp, (struct sockaddr*)&a, &length) != 0) write_failed = 1;
  handled = handled + 1;
  errno = saved;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  struct rlimit nofile;
  getrlimit(RLIMIT_NOFILE, &nofile);
  if (nofile.rlim_max < 5001) {
    fprintf(stderr, "RLIMIT_NOFILE's hard limit is below 5001\n");
    return 2;
  }
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  int fds[2];
  if (pipe(fds) != 0) return 2;
  pipe_write = dup2(fds[1], 5000);
  if (pipe_write < 0) {
    perror("dup2");
    return 2;
  }
  close(fds[1]);
  fcntl(pipe_write, F_SETFL, O_NONBLOCK);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);

  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons((unsigned short)atoi(argv[2]));
  inet_pton(AF_INET, argv[1], &to.sin_addr);
  udp = socket(AF_INET, SOCK_DGRAM, 0);
  if (sendto(udp, "first", 5, 0, (struct sockaddr*)&to, sizeof to) != 5) {
    perror("sendto");
    return 3;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval every = {{0, 200}, {0, 200}};
  setitimer(ITIMER_REAL, &every, NULL);

  long sent = 0, asked = 0, drained = 0;
  const double end = now() + atof(argv[3]);
  char buffer[256];
  while (now() < end) {
    if (sendto(udp, "ping", 4, 0, (struct sockaddr*)&to, sizeof to) == 4) ++sent;
    struct sockaddr_storage a;
    socklen_t length = sizeof a;
    getsockname(udp, (struct sockaddr*)&a, &length);
    length = sizeof a;
    getpeername(udp, (struct sockaddr*)&a, &length);
    ++asked;
    ssize_t n = read(fds[0], buffer, sizeof buffer);
    if (n > 0) drained += n;
  }
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  printf("{\"handled\": %d, \"write_failed\": %d, \"sent\": %ld, \"asked\": %ld, \"drained\": %ld}\n",
         (int)handled, (int)write_failed, sent, asked, drained);
  return 0;
}
