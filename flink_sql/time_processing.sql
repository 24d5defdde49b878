-- Processing time: windows follow arrival at Flink. Each row is emitted as soon as it arrives.
row_time AS PROCTIME()
