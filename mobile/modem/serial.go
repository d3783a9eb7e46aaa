package modem

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

var bauds = map[int]uint32{
	9600: unix.B9600, 19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600,
	115200: unix.B115200, 230400: unix.B230400, 460800: unix.B460800, 921600: unix.B921600,
}

// openSerial opens a tty raw (no echo, no CR/LF translation, 8N1) and keeps
// it non-blocking, so the Go runtime polls it and Close ends a read that is
// waiting on a modem that has gone silent. warthog618/modem's serial package
// (tarm/serial) blocks in read(2), which no Close interrupts: every reopen
// of a silent modem would leak a goroutine and a descriptor.
func openSerial(path string, baud int) (*os.File, error) {
	speed, ok := bauds[baud]
	if !ok {
		return nil, fmt.Errorf("unsupported baud rate %d", baud)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s is not a serial port: %w", path, err)
	}
	// cfmakeraw, then 8N1 at the speed, receiver on, modem lines ignored.
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CBAUD | unix.CRTSCTS
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL | speed
	t.Ispeed, t.Ospeed = speed, speed
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("set %s raw: %w", path, err)
	}
	unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIOFLUSH)
	return os.NewFile(uintptr(fd), path), nil
}
