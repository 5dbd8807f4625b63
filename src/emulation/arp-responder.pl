#!/usr/bin/perl
# A user-space ARP responder for ONE link, the way MetalLB's L2 speaker answers ARP
# (metallb internal/layer2/arp.go@v0.16.1, on mdlayher/arp's raw socket): the kernel does not
# answer for the addresses (src/emulation/net.ts sets arp_ignore/arp_announce), this process does.
# It is a child of the agent, in the agent's process group: SIGSTOP of the agent stops it, SIGKILL
# kills it, SIGTERM is left to the agent (it releases, then closes the responder's stdin: exit).
#
# Why Perl: Node has no AF_PACKET socket, and perl-base (Essential in Debian, so on every lab host)
# has socket(2)/bind(2)/send(2) with any domain — no compiler, no native npm addon.
#
#   perl arp-responder.pl <ifname>
# stdin, one command per line:  add <ip> | del <ip> | garp <ip>
# stdout, one event per line:    ready <mac> | reply <ip> <to-ip> <to-mac> | garp <ip> | error <text>
#
# Rules (processRequest in arp.go): only ARP requests; only frames sent to the broadcast address
# or to this link's MAC; only for an address held now. The reply is unicast to the requester:
# THA/TPA = the request's SHA/SPA (mdlayher/arp Client.Reply). Gratuitous ARP (arp.go Gratuitous):
# a request and a reply, both broadcast, SPA = TPA = the address, THA = ff:ff:ff:ff:ff:ff.
use strict;
use warnings;

my $ifname = shift @ARGV or die "usage: arp-responder.pl <ifname>\n";
$| = 1;
# a graceful stop signals the agent's whole process group: the responder answers until the agent
# (the speaker) has left and released, and ends when the agent closes its stdin
$SIG{TERM} = 'IGNORE';
$SIG{INT} = 'IGNORE';

sub slurp { my ($f) = @_; open(my $h, '<', $f) or die "cannot read $f: $!\n"; local $/; my $v = <$h>; close $h; $v =~ s/\s+$//; return $v; }
my $ifindex = slurp("/sys/class/net/$ifname/ifindex");
my $macstr  = slurp("/sys/class/net/$ifname/address");
my $mac     = pack('H12', join('', split(/:/, $macstr)));
my $bcast   = "\xff" x 6;

use constant { AF_PACKET => 17, SOCK_RAW => 3, ETH_P_ARP => 0x0806 };
# the protocol argument of socket(2) is in network byte order (htons)
my $proto_n = unpack('S', pack('n', ETH_P_ARP));
socket(my $sock, AF_PACKET, SOCK_RAW, $proto_n) or die "socket(AF_PACKET): $!\n";
# struct sockaddr_ll { u16 family; be16 protocol; i32 ifindex; u16 hatype; u8 pkttype; u8 halen; u8 addr[8] }
my $sll = pack('S n i S C C a8', AF_PACKET, ETH_P_ARP, $ifindex, 0, 0, 0, '');
bind($sock, $sll) or die "bind($ifname): $!\n";

my %held;
sub ip2n { my @o = split(/\./, $_[0]); return pack('C4', @o); }
sub n2ip { return join('.', unpack('C4', $_[0])); }
sub mac2s { return join(':', map { sprintf('%02x', $_) } unpack('C6', $_[0])); }

sub arp_frame {
  my ($dst, $op, $sha, $spa, $tha, $tpa) = @_;
  return $dst . $mac . pack('n', ETH_P_ARP) . pack('n n C C n', 1, 0x0800, 6, 4, $op) . $sha . $spa . $tha . $tpa;
}

sub garp {
  my ($ip) = @_;
  my $a = ip2n($ip);
  send($sock, arp_frame($bcast, 1, $mac, $a, $bcast, $a), 0);
  send($sock, arp_frame($bcast, 2, $mac, $a, $bcast, $a), 0);
  print "garp $ip\n";
}

sub command {
  my ($line) = @_;
  my ($cmd, $ip) = split(/\s+/, $line);
  return unless defined $cmd;
  if ($cmd eq 'add' && defined $ip) { $held{ip2n($ip)} = $ip; }
  elsif ($cmd eq 'del' && defined $ip) { delete $held{ip2n($ip)}; }
  elsif ($cmd eq 'garp' && defined $ip) { garp($ip); }
  else { print "error unknown command '$line'\n"; }
}

sub frame {
  my ($f) = @_;
  return if length($f) < 42;
  my ($dst, $src, $type) = unpack('a6 a6 n', $f);
  return unless $type == ETH_P_ARP;
  return unless $dst eq $bcast || $dst eq $mac;
  my ($htype, $ptype, $hlen, $plen, $op, $sha, $spa, $tha, $tpa) = unpack('n n C C n a6 a4 a6 a4', substr($f, 14));
  return unless $htype == 1 && $ptype == 0x0800 && $hlen == 6 && $plen == 4 && $op == 1;
  return unless exists $held{$tpa};
  return if $sha eq $mac;
  send($sock, arp_frame($sha, 2, $mac, $tpa, $sha, $spa), 0);
  print 'reply ' . $held{$tpa} . ' ' . n2ip($spa) . ' ' . mac2s($sha) . "\n";
}

print "ready $macstr\n";
my $buf_in = '';
for (;;) {
  my $rin = '';
  vec($rin, fileno(STDIN), 1) = 1;
  vec($rin, fileno($sock), 1) = 1;
  my $n = select(my $rout = $rin, undef, undef, undef);
  next if $n < 0 && $!{EINTR};
  die "select: $!\n" if $n < 0;
  if (vec($rout, fileno($sock), 1)) {
    my $f;
    recv($sock, $f, 1600, 0);
    frame($f) if defined $f;
  }
  if (vec($rout, fileno(STDIN), 1)) {
    my $got = sysread(STDIN, my $chunk, 4096);
    exit 0 if !defined $got || $got == 0; # the agent is gone
    $buf_in .= $chunk;
    while ($buf_in =~ s/^([^\n]*)\n//) { command($1); }
  }
}
