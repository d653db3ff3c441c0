/* A green-thread host's view of the firewall client: every kind of call the library handles,
 * made from a thread whose whole stack is STACK_KIB (16 by default, glibc's least; coroutine and green-thread runtimes give each
 * task a few KiB to a few tens of KiB). Overflowing it kills the program (SIGSEGV on the guard).
 *
 * usage: small_stack NAME HOST ECHO_PORT UDP_PORT [STACK_KIB]
 *
 * On the small stack: getaddrinfo(NAME) (resolved at the gateway), a blocking remoted connect to
 * HOST:ECHO_PORT with an echo, getpeername/getsockname, a non-blocking remoted connect waited for
 * with select() over 100 descriptors (past what the library keeps on the stack), and a UDP sendmsg
 * of 20 vectors to HOST:UDP_PORT (associated through the gateway). Prints one JSON line. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static const char* name;
static struct sockaddr_in echo_to, udp_to;
static char result[512];

static void* work(void* unused) {
  (void)unused;
  struct addrinfo hints, *found = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  int resolved = getaddrinfo(name, "80", &hints, &found) == 0 && found != NULL;
  if (found) freeaddrinfo(found);

  int s = socket(AF_INET, SOCK_STREAM, 0);
  int echoed = 0, peer_right = 0;
  if (connect(s, (struct sockaddr*)&echo_to, sizeof echo_to) == 0) {
    struct sockaddr_in peer;
    socklen_t length = sizeof peer;
    peer_right = getpeername(s, (struct sockaddr*)&peer, &length) == 0 &&
                 peer.sin_addr.s_addr == echo_to.sin_addr.s_addr && peer.sin_port == echo_to.sin_port;
    length = sizeof peer;
    getsockname(s, (struct sockaddr*)&peer, &length);
    char buffer[16] = {0};
    echoed = send(s, "small\n", 6, 0) == 6 && recv(s, buffer, 6, MSG_WAITALL) == 6 &&
             memcmp(buffer, "small\n", 6) == 0;
  }
  close(s);

  /* A non-blocking connect, waited for among 100 descriptors. */
  int pipes[49][2];
  for (int i = 0; i < 49; ++i) pipe(pipes[i]);
  int n = socket(AF_INET, SOCK_STREAM, 0);
  fcntl(n, F_SETFL, O_NONBLOCK);
  int started = connect(n, (struct sockaddr*)&echo_to, sizeof echo_to);
  int in_progress = started == 0 || errno == EINPROGRESS;
  int selected = 0, so_error = -1;
  for (int round = 0; round < 100 && !selected; ++round) {
    fd_set readable, writable;
    FD_ZERO(&readable);
    FD_ZERO(&writable);
    int top = n;
    for (int i = 0; i < 49; ++i) {
      FD_SET(pipes[i][0], &readable);
      FD_SET(pipes[i][1], &readable);
      if (pipes[i][1] > top) top = pipes[i][1];
    }
    FD_SET(n, &writable);
    struct timeval wait = {0, 100000};
    if (select(top + 1, &readable, &writable, NULL, &wait) > 0 && FD_ISSET(n, &writable)) {
      socklen_t length = sizeof so_error;
      getsockopt(n, SOL_SOCKET, SO_ERROR, &so_error, &length);
      selected = 1;
    }
  }
  close(n);
  for (int i = 0; i < 49; ++i) {
    close(pipes[i][0]);
    close(pipes[i][1]);
  }

  /* UDP with more vectors than the library keeps on the stack. */
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct iovec vectors[20];
  char piece[20][4];
  for (int i = 0; i < 20; ++i) {
    memcpy(piece[i], "abcd", 4);
    vectors[i].iov_base = piece[i];
    vectors[i].iov_len = 4;
  }
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_name = &udp_to;
  m.msg_namelen = sizeof udp_to;
  m.msg_iov = vectors;
  m.msg_iovlen = 20;
  ssize_t sent = sendmsg(u, &m, 0);
  close(u);
  snprintf(result, sizeof result,
           "{\"resolved\": %d, \"echoed\": %d, \"peer_right\": %d, \"in_progress\": %d, "
           "\"selected\": %d, \"so_error\": %d, \"udp_sent\": %zd}",
           resolved, echoed, peer_right, in_progress, selected, so_error, sent);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) return 2;
  const size_t stack = (argc == 6 ? (size_t)atoi(argv[5]) : 16) * 1024;
  name = argv[1];
  echo_to.sin_family = AF_INET;
  echo_to.sin_port = htons((unsigned short)atoi(argv[3]));
  inet_pton(AF_INET, argv[2], &echo_to.sin_addr);
  udp_to = echo_to;
  udp_to.sin_port = htons((unsigned short)atoi(argv[4]));
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if (pthread_attr_setstacksize(&attr, stack) != 0) return 2;
  pthread_t t;
  if (pthread_create(&t, &attr, work, NULL) != 0) return 2;
  pthread_join(t, NULL);
  puts(result);
  return 0;
}
