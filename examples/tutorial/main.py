import wifi
wifi.start()

# 测试台改动（唯一的一处）：服务器地址由测试台在部署时写入 broker_address.py，
# 原文为 server_ip = "mq.tongxinmao.com"，端口 18830。
# The one change for the rig: the broker's address, written by the rig at deploy
# (broker_address.py); published as server_ip = "mq.tongxinmao.com", port 18830.
from broker_address import server_ip, server_port
client_id = "umqtt_client" # 客户端 ID ，随意定义，用来标识自己发出的数据。

import time

from umqtt.robust import MQTTClient

try:
    # see https://github.com/micropython/micropython-lib/blob/master/umqtt.simple/umqtt/simple.py
    c = MQTTClient(client_id, server_ip, server_port) # 配置连接，这个是连通信猫的服务器配置，端口是 18830，一般默认的是 1883

    c.DEBUG = True # 输出 Debug 信息

    def sub_cb(topic, msg):
        print((topic, msg))
        c.publish(topic, msg) # 无论收到什么订阅的信息都以同样的主题和数据传回。

    c.set_callback(sub_cb) # 把向远端订阅（subscribe）的数据接收回调处理。

    if not c.connect(clean_session=False):
        c.subscribe(b"foo_topic") # 订阅一个 foo_topic 的主题（topic）

    c.publish(b"foo_topic", b"hello") # 向  foo_topic 的主题（topic）发送 hello 字符串。

    while 1:
        # 让芯片运行慢一点，便于观察现象。
        time.sleep(1)

        # 等待处理 MQTT 的数据
        if c.check_msg() is not None:
            c.wait_msg()

        # 没数据可以处理的时候可以做点别的事情
        else:
            print('other operator')

finally:
    c.disconnect() # 调试程序事重开服务，要记得收尾，否则将重启板子才可以继续。
