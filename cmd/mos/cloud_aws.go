package main

import "github.com/spf13/cobra"

func newCloudAWSCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "aws", Short: "AWS IoT"}
}
