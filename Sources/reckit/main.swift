import ArgumentParser
RecKitCommand.main()
