#!/usr/bin/python3
"""A Modbus TCP server for sensors/modbus's tests: Debian's python3-pymodbus
(3.0), an implementation nobody in this project wrote.

    server.py PORT

listens on 127.0.0.1:PORT with 1000 holding registers, input registers,
coils and discrete inputs, all 0, at protocol addresses 0-999 (zero_mode:
no "register 40001" offsets). It prints "LISTENING PORT" once it accepts
connections. Each line on stdin sets values and is answered "OK" once
they are in place (or "ERR ..."):

    set hr|ir|co|di ADDRESS VALUE...

The test writes holding registers and coils through Modbus too. The
server exits when stdin closes, so it never outlives its test.
"""

import asyncio
import logging
import os
import sys
import threading

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.server import StartAsyncTcpServer

SIZE = 1000


def control(slave, loop):
    """Applies stdin's commands; ends the process at EOF."""
    for line in sys.stdin:
        parts = line.split()
        try:
            if len(parts) < 4 or parts[0] != "set" or parts[1] not in ("hr", "ir", "co", "di"):
                raise ValueError("want: set hr|ir|co|di ADDRESS VALUE...")
            address = int(parts[2])
            values = [int(v) for v in parts[3:]]
            # The datastore is a plain list; the event loop's thread owns
            # it, so the change is made there.
            done = threading.Event()

            def apply():
                slave.store[parts[1][0]].setValues(address, values)
                done.set()
            loop.call_soon_threadsafe(apply)
            done.wait()
            print("OK", flush=True)
        except Exception as exc:  # pylint: disable=broad-except
            print("ERR", exc, flush=True)
    os._exit(0)


async def main(port):
    slave = ModbusSlaveContext(
        di=ModbusSequentialDataBlock(0, [0] * SIZE),
        co=ModbusSequentialDataBlock(0, [0] * SIZE),
        hr=ModbusSequentialDataBlock(0, [0] * SIZE),
        ir=ModbusSequentialDataBlock(0, [0] * SIZE),
        zero_mode=True,
    )
    context = ModbusServerContext(slaves=slave, single=True)
    server = await StartAsyncTcpServer(context=context, address=("127.0.0.1", port),
                                       allow_reuse_address=True, defer_start=True)
    task = asyncio.create_task(server.serve_forever())
    await server.serving
    print("LISTENING", port, flush=True)
    threading.Thread(target=control, args=(slave, asyncio.get_running_loop()), daemon=True).start()
    await task


if __name__ == "__main__":
    logging.basicConfig(level=logging.CRITICAL)
    asyncio.run(main(int(sys.argv[1])))
