// Tells a request handler whether its client is still connected. cpp-httplib 0.11 gives handlers no access
// to the connection, so the socket is found by its addresses; no transformers counterpart.
#pragma once

#include <string>

namespace idefics::server {

class ConnectionProbe {
 public:
  // Finds the connected socket whose local and peer addresses are these (a request's local_addr/local_port
  // and remote_addr/remote_port). The socket stays open while the handler runs (httplib closes it after the
  // response), so the descriptor cannot be reused under us.
  ConnectionProbe(const std::string& local_addr, int local_port, const std::string& remote_addr,
                  int remote_port);

  // True when the client has closed or reset the connection. A client that only shut down its sending side
  // (half-close) reads as gone too: a socket cannot tell the two apart without writing to it. False while the
  // connection is open or when the socket was not found.
  bool ClientGone() const;
  bool found() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace idefics::server
