import FoveaRuntime
print("bench")
